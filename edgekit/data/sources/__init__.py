"""One module per kind of DATA: built-in sets, ``.npz`` (one array per split, or per input name),
image folders, ``.csv``. :func:`edgekit.data.load_data` picks the one DATA names."""
