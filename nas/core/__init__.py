"""The core contracts: no torch, no Optuna (see DESIGN.md)."""
