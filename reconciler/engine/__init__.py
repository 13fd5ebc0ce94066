"""The sync engine, internal to reconciler (cli.py and web/ never import it): read the journal by windows, plan,
stage and apply chunks, detect conflicts on push, skip and refresh on pull, copy the cloud at init."""
