"""A real Kubernetes control plane for the tests: etcd, kube-apiserver and Helm, on the loopback address."""
