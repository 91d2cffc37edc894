"""Outgoing HTTP for agents, made by the host only where an agent's [network] allow list says: `allow` holds the
rules and the addresses no name may lead to, `exchange` makes one checked request."""
