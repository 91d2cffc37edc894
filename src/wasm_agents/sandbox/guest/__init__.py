"""The guest's modules, built into every component and mounted at /2; the host imports only wasm_agents_protocol."""
