package wiretest

// knownNetstackFailures lists the tests whose netstack subtest is known to
// fail, each with the issue item that tracks the defect; the linux subtest
// of every test here passes. A listed netstack subtest still runs: when it
// fails it is skipped with its reason, so the package stays green; when it
// passes it says so in the log. Delete a line when its fix lands, and the
// subtest must then pass.
var knownNetstackFailures = map[string]string{}
