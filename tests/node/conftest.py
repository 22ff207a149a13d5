"""A real node (containerd, kubelet, scheduler, controller-manager) on its own control plane.

One node per test module: a node takes the whole host (fixed link names, the kubelet's port,
a host-wide lock), so a module-scoped node is stopped before the next module starts its own
(e.g. the pods stack's); starting one takes a few seconds. Isolate tests by namespace. Tests
that add images import them with ``node.import_image(archive)``; pods use
``imagePullPolicy: Never``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubekms.devenv import controlplane
from kubekms.devenv import node as node_module
from kubekms.devenv.node_images import go_image_archive

# A static probe for pods: logs a line, then with a ServiceAccount token asks the apiserver
# (through the `kubernetes` Service) who it is, logs the answers, and idles until SIGTERM.
PROBE_IMAGE = "localhost/kubekms/node-probe:1"
PROBE_SOURCE = """package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const account = "/var/run/secrets/kubernetes.io/serviceaccount/"

func call(client *http.Client, token []byte, method, path string, body []byte) (int, string, error) {
	url := "https://" + os.Getenv("KUBERNETES_SERVICE_HOST") + ":" + os.Getenv("KUBERNETES_SERVICE_PORT") + path
	request, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	request.Header.Set("Authorization", "Bearer "+string(bytes.TrimSpace(token)))
	request.Header.Set("Content-Type", "application/json")
	response, err := client.Do(request)
	if err != nil {
		return 0, "", err
	}
	defer response.Body.Close()
	data, _ := io.ReadAll(response.Body)
	return response.StatusCode, string(data), nil
}

func main() {
	fmt.Println("probe: started")
	token, err := os.ReadFile(account + "token")
	if err != nil {
		fmt.Println("probe: no token:", err)
	} else {
		ca, _ := os.ReadFile(account + "ca.crt")
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		client := &http.Client{Timeout: 5 * time.Second, Transport: transport}
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
			status, _, err := call(client, token, "GET", "/api", nil)
			if err != nil {
				fmt.Println("probe: GET /api failed:", err)
				continue
			}
			fmt.Printf("probe: GET /api status=%d\\n", status)
			review := []byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`)
			reviews := "/apis/authentication.k8s.io/v1/selfsubjectreviews"
			status, body, err := call(client, token, "POST", reviews, review)
			fmt.Printf("probe: SelfSubjectReview status=%d err=%v body=%s\\n", status, err, body)
			break
		}
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	fmt.Println("probe: stopping")
}
"""


@pytest.fixture(scope="module")
def node_plane() -> Iterator[controlplane.ControlPlane]:
    """A control plane of the node's own (ServiceAccount admission on, as a node needs)."""
    if os.geteuid() != 0:
        pytest.skip("the node tier needs root (containerd, runc, network and cgroup setup)")
    with controlplane.control_plane(pods=True) as plane:
        yield plane


@pytest.fixture(scope="module")
def node(node_plane: controlplane.ControlPlane) -> Iterator[node_module.Node]:
    """The module's Ready node; its host changes are undone when the module ends."""
    # another node on this host (a developer's `dev up --pods`) is waited for, not disturbed;
    # within the test timeout (pytest-timeout counts fixture setup)
    with node_module.node(node_plane, lock_timeout=300) as running:
        yield running


@pytest.fixture(scope="module")
def probe_image(node: node_module.Node) -> str:
    """A tiny image (static Go probe, FROM scratch) imported into the node; returns its reference."""
    archive: Path = go_image_archive(PROBE_IMAGE, PROBE_SOURCE)
    node.import_image(archive)
    return PROBE_IMAGE


@pytest.fixture
def namespace(node: node_module.Node) -> Iterator[str]:
    """A fresh namespace whose default ServiceAccount exists (made by kube-controller-manager)."""
    name = f"node-{uuid.uuid4().hex[:8]}"
    node.kubectl("create", "namespace", name)
    node.kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")
    yield name
    node.kubectl("delete", "namespace", name, "--wait=false")
