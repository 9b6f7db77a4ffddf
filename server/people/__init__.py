"""People: reading and presenting them; rosters fill them in (``server.rosters``)."""
