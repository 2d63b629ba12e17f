# Build: docker build -t session-proxy .
# Run:   docker run -p 8080:8080 -e SESSION_SECRET=$(session-proxy keygen) \
#          -v $PWD/proxy.yaml:/etc/session-proxy/proxy.yaml:ro \
#          -v $PWD/certs:/etc/session-proxy/certs:ro session-proxy
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked --bin session-proxy

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin proxy
COPY --from=build /src/target/release/session-proxy /usr/local/bin/session-proxy
COPY proxy.yaml /etc/session-proxy/proxy.yaml
# Listen on all interfaces inside the container; mount your own proxy.yaml over the default one.
# With TLS, mount certificates at /etc/session-proxy/certs and set in proxy.yaml:
#   tls: { cert: /etc/session-proxy/certs/cert.pem, key: /etc/session-proxy/certs/key.pem }
ENV SESSION_PROXY_CONFIG=/etc/session-proxy/proxy.yaml \
    SESSION_PROXY_LISTEN=0.0.0.0:8080
USER 10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/session-proxy"]
CMD ["serve"]
