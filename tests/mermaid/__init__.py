"""Mermaid's own parser under Node (check.mjs) and Graphviz's dot, as test oracles."""
