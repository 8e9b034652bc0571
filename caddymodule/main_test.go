package caddymodule_test

import (
	"os"
	"testing"

	"github.com/ssogate/ssogate/internal/gatewaytest"
)

func TestMain(m *testing.M) {
	gatewaytest.RunIfChild()
	os.Exit(m.Run())
}
