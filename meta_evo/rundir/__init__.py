"""Run directories on disk, without JAX: what a directory is (:mod:`.layout`: the manifest, the
lock), its plain files (:mod:`.io`: atomic JSON and JSONL), its checkpoints (:mod:`.store`: the
one orbax store of runs and sweeps) and how a signal stops a writer (:mod:`.signals`)."""
