package caddymodule

import "testing"

func TestPublicAddress(t *testing.T) {
	for host, want := range map[string]bool{
		"93.184.216.34": true, "2606:2800:220:1:248:1893:25c8:1946": true, "8.8.8.8": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "fc00::1": false, "0.0.0.0": false, "::": false,
		"0.1.2.3": false, "100.64.0.1": false, "100.127.255.254": false, "192.0.0.8": false,
		"198.18.0.1": false, "240.0.0.1": false, "255.255.255.255": false, "224.0.0.1": false,
		"::ffff:127.0.0.1": false, "::ffff:169.254.169.254": false, "64:ff9b::a9fe:a9fe": false,
		"2002:7f00:1::": false, "2001:0::1": false, "not-an-ip": false, "": false,
	} {
		if got := publicAddress(host); got != want {
			t.Errorf("publicAddress(%q) = %v, want %v", host, got, want)
		}
	}
}
