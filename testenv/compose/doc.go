// Package compose holds the offline checks of the docker-compose test bed: no Docker engine is
// needed to know that docker-compose.yml is valid, that everything it mounts exists, that the
// Envoy configurations it mounts pass certbind's linter, that the certbind configuration it
// mounts loads against a freshly generated PKI, and that the Dockerfile has the build targets the
// services name. The package has only tests.
package compose
