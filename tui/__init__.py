"""Terminal UI for plgsim (see the TUI issue); the simulator never imports it."""
