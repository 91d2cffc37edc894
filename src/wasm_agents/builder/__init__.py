"""The steps of `build`: discover, vendor, stage, componentize (with bytecode and the guest runtime), package."""
