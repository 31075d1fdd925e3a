"""metaray: a Ray-on-Kubernetes operator built as a Metacontroller CompositeController hook."""

__version__ = "0.1.0"
