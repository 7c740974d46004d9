package tcp

import "unsafe"

var sizeofConn = unsafe.Sizeof(Conn{})
