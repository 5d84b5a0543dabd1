# Tessera as a container image: `docker build -t tessera .` (README.md, "Deploying to
# production"). A release build, then a slim runtime image holding the binary and the
# configuration of deploy/tessera.toml, run as an unprivileged user.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin tessera

# Needs only libc and libgcc: TLS is rustls with its root certificates built in, and SQLite is
# compiled in.
FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 tessera \
    && useradd --system --uid 10001 --gid tessera --home-dir /var/lib/tessera --create-home \
        --shell /usr/sbin/nologin tessera
COPY --from=build /src/target/release/tessera /usr/local/bin/tessera
COPY deploy/tessera.toml /etc/tessera/tessera.toml
# The production configuration, with what differs in a container: the secret key from a
# secret mounted at /run/secrets/tessera_secret_key (readable by uid 10001), and metrics on
# every interface of the container (publish port 9464 on a private network only, never to the
# internet). The passwords come in TESSERA_DATABASE__URL and TESSERA_EMAIL__SMTP_URL.
ENV TESSERA_CONFIG=/etc/tessera/tessera.toml \
    TESSERA_SECRET_KEY_FILE=/run/secrets/tessera_secret_key \
    TESSERA_METRICS__BIND=0.0.0.0:9464
# Numeric, so that a runtime can tell the user is not root without reading /etc/passwd.
USER 10001:10001
# Holds nothing with PostgreSQL; with SQLite (TESSERA_DATABASE__URL=
# sqlite:///var/lib/tessera/tessera.db?mode=rwc, one instance) mount a volume here.
WORKDIR /var/lib/tessera
EXPOSE 8000 9464
# docker stop sends SIGTERM and waits 10 s by default: give it `--stop-timeout 45` (requests
# in flight, then the mail in hand, as in deploy/tessera.service).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tessera"]
CMD ["serve"]
