"""Traced graphs: the IR, the tracer and NNCF-style names."""

from nncf_explore.graph.ir import Edge, Graph, NNCFGraph, Node
from nncf_explore.graph.ops import OpCategory
from nncf_explore.graph.scope import matches_any, names_match, normalize_node_name
from nncf_explore.graph.trace import trace_model
from nncf_explore.graph.tracking import nncf_model_input, nncf_model_output

__all__ = [
    "Edge",
    "Graph",
    "NNCFGraph",
    "Node",
    "OpCategory",
    "matches_any",
    "names_match",
    "nncf_model_input",
    "nncf_model_output",
    "normalize_node_name",
    "trace_model",
]
