"""Name what answers a TCP port: pure parsers of first answers, and the nudge engine.

``model`` holds the one result type (Identity) and the engine's outcome (Identification);
``banners``, ``http_wire``, ``resp``, ``pg_wire``, ``tls_wire`` and ``amqp_wire`` are pure
functions of bytes; ``nudges`` says what to send to whom; ``engine`` runs it on sockets within
a hard deadline; ``certs`` turns a server certificate into facts.
"""
