"""The loading layer: where models come from. `paths` finds model directories (the search path) and
tells their kind; `generators` reads released directories (args.json + a Lightning pickle), our
directories and training checkpoints into the model class it is given (model classes delegate their
`from_pretrained` here; this layer never imports them); `describe` sits above both and the models, to
list what is on the search path. Reading pickles safely is wala.io.pickled's."""
