"""Fixtures that start the envtest kube-apiserver + etcd on loopback."""
