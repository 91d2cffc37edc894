from wasm_agents.cli import main

main()
