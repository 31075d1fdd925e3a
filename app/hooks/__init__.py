"""Metacontroller's wire format: decoding sync requests, encoding responses (pure)."""
