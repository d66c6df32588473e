"""Circuits: the graph of components and edges that circuit discovery scores."""

from mechscope.circuits.graph import INPUT, CircuitGraph, Edge, Node, Receiver

__all__ = ["INPUT", "CircuitGraph", "Edge", "Node", "Receiver"]
