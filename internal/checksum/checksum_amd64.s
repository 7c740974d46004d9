#include "textflag.h"

// func sumAVX2(b []byte) uint64
//
// sumAVX2 adds the little-endian 16-bit words of b[:len(b)&^63], 64 bytes
// a round: each word is widened to 32 bits and added into one of 32 lanes
// of four accumulators, which cannot overflow for len(b) ≤ 1<<20 (16384
// rounds of at most 65535), and the lanes are added up in 64 bits at the
// end. The caller folds the sum and swaps its bytes (RFC 1071 §2(B): the
// sum is independent of byte order).
TEXT ·sumAVX2(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	SHRQ $6, CX
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	TESTQ CX, CX
	JZ done
loop:
	VPMOVZXWD 0(SI), Y4
	VPMOVZXWD 16(SI), Y5
	VPMOVZXWD 32(SI), Y6
	VPMOVZXWD 48(SI), Y7
	VPADDD Y4, Y0, Y0
	VPADDD Y5, Y1, Y1
	VPADDD Y6, Y2, Y2
	VPADDD Y7, Y3, Y3
	ADDQ $64, SI
	DECQ CX
	JNZ loop
done:
	// Widen the 32 dword lanes to qwords and add them up.
	VPADDD Y1, Y0, Y0 // each lane ≤ 2·65535·16384 < 2^32
	VPADDD Y3, Y2, Y2
	VPMOVZXDQ X0, Y4
	VEXTRACTI128 $1, Y0, X0
	VPMOVZXDQ X0, Y5
	VPMOVZXDQ X2, Y6
	VEXTRACTI128 $1, Y2, X2
	VPMOVZXDQ X2, Y7
	VPADDQ Y5, Y4, Y4
	VPADDQ Y7, Y6, Y6
	VPADDQ Y6, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPADDQ X5, X4, X4
	VPEXTRQ $1, X4, AX
	VMOVQ X4, BX
	ADDQ BX, AX
	VZEROUPPER
	MOVQ AX, ret+24(FP)
	RET
