"""Spec files: XML and YAML readers/writers, the directory loader and its checks."""
