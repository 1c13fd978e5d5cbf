"""The loading layer: where models come from. `paths` finds model directories (the search path) and
tells their kind; `generators` reads released directories (args.json + a Lightning pickle), our
directories and training checkpoints into the model class it is given (model classes delegate their
`from_pretrained` here; this layer never imports them); `download` turns a Hugging Face hub id or a
released short name into its snapshot in the hub's cache; `describe` sits above them and the models,
to list what is on the search path and in that cache. Reading pickles safely is wala.io.pickled's."""
