"""Run chains of cooperating, untrusted Python agents, each in its own WebAssembly sandbox."""

__version__ = "0.1.0"
