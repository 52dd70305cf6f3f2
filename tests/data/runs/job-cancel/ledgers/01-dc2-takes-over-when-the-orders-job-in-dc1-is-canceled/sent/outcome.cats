ok
fail
