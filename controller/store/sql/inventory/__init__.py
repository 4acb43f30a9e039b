"""The store's inventory: stock and its ledger, reservations of loose stock and of AS/RS
totes, and the register of reject-chute totes, as plain functions over one connection run on the
store's writer thread, and the parts of the store that call them."""
