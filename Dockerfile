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
COPY docker/proxy.yaml /etc/session-proxy/proxy.yaml
# docker/proxy.yaml listens on all interfaces; mount your own proxy.yaml over it. Certificates go
# in /etc/session-proxy/certs (its commented tls: block points there).
VOLUME ["/etc/session-proxy/certs"]
ENV SESSION_PROXY_CONFIG=/etc/session-proxy/proxy.yaml
USER 10001
EXPOSE 8080 8443
ENTRYPOINT ["/usr/local/bin/session-proxy"]
CMD ["serve"]
