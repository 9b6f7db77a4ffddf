from sync.crypto import b64e
def test_x():
    assert b64e(b"") == ""
