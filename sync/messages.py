"""The JSON messages of the sync protocol, shared by the server and devices.

Binary values (keys, session blobs, envelopes, sealed pages) travel as unpadded base64url.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

B64 = validate.Regexp(r"^[A-Za-z0-9_-]*$", error="Not unpadded base64url.")

#: Per-record answers to a push.
ACCEPTED = "accepted"
DUPLICATE = "duplicate"  # already held: acknowledged again
REJECTED = "rejected"  # final: kept in the server's quarantine, never retry
RETRY = "retry"  # not stored this time: send again later
RECORD_STATUSES = (ACCEPTED, DUPLICATE, REJECTED, RETRY)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class EnrolRequestSchema(_Strict):
    code = fields.Str(required=True, validate=validate.Length(min=4, max=32))
    signing_key = fields.Str(required=True, validate=[B64, validate.Length(equal=43)])
    encryption_key = fields.Str(required=True, validate=[B64, validate.Length(equal=43)])
    label = fields.Str(load_default="", validate=validate.Length(max=100))
    clock = fields.Int(required=True)


class ServerKeySchema(_Strict):
    kid = fields.Str(required=True)
    alg = fields.Str(required=True)
    public_key = fields.Str(required=True, validate=B64)


class EnrolResponseSchema(_Strict):
    device_id = fields.UUID(required=True)
    operation = fields.Dict(required=True)
    server_keys = fields.List(fields.Nested(ServerKeySchema), required=True)
    current_kid = fields.Str(required=True)
    settings = fields.Dict(required=True)
    server_time = fields.Int(required=True)


class PushRequestSchema(_Strict):
    clock = fields.Int(required=True)
    sessions = fields.List(fields.Str(validate=B64), load_default=list)
    envelopes = fields.List(fields.Str(validate=B64), required=True)


class RecordResultSchema(_Strict):
    index = fields.Int(required=True)
    id = fields.UUID(allow_none=True)
    seq = fields.Int(allow_none=True)
    status = fields.Str(required=True, validate=validate.OneOf(RECORD_STATUSES))
    code = fields.Str(allow_none=True)
    message = fields.Str(allow_none=True)


class PushResponseSchema(_Strict):
    results = fields.List(fields.Nested(RecordResultSchema), required=True)
    server_time = fields.Int(required=True)
    high_seq = fields.Int(required=True)
    contiguous_seq = fields.Int(required=True)
    current_kid = fields.Str(required=True)


class PullResponseSchema(_Strict):
    cursor = fields.Int(required=True)
    more = fields.Bool(required=True)
    sealed = fields.Str(required=True, validate=B64)
    server_time = fields.Int(required=True)
