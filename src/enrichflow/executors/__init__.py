"""Where step code runs: ``local`` (threads in this process) or ``modal`` (Modal functions)."""
