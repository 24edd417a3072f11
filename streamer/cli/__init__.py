"""Command-line interface: one module per area, all registered on one typer app in `main`."""
