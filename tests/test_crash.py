import time
def test_t(make_practice):
    t=time.monotonic(); p = make_practice(); print("practice", time.monotonic()-t)
    t=time.monotonic(); p.sync("pc-1"); print("sync", time.monotonic()-t)
