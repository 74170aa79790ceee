"""Provider emulations of the sandbox server: one module each, exporting EMULATOR (an Emulator)."""
