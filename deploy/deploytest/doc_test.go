// Package deploytest checks the deployment artefacts under deploy/ (compose,
// systemd, Helm) and the container image against the gateway itself: each
// artefact is loaded by the library its real consumer uses, and the gateway
// config it carries goes through the same checks as `check-config`. Every
// check is also run on deliberately broken copies, which must fail.
//
// The package holds tests only, so the heavy libraries (compose-go, Helm,
// k8s.io/api) never reach the gateway binary.
package deploytest
