"""Fix a down service after an approval click: which actions make sense, who may approve, and doing it once."""
