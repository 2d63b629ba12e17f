# Build: docker build -t session-proxy --build-arg GIT_COMMIT=$(git rev-parse --short=12 HEAD) .
#        (GIT_COMMIT is what --version and the build_info metric report; the build context has no
#        .git, so without it they say "unknown".)
# Run:   docker run -p 8080:8080 -e SESSION_SECRET=$(session-proxy keygen) \
#          -e SESSION_PROXY_UPSTREAM=http://app:3000 session-proxy
#        (mount your own proxy.yaml at /etc/session-proxy/proxy.yaml, certificates at
#        /etc/session-proxy/certs). docs/operations.md explains the probes and the deployment kits.
# Tested without a container engine by tests/dockerfile.py, which performs these steps into a
# directory (see docs/operations.md); keep to the instructions it knows (FROM, ARG, WORKDIR, COPY,
# RUN, ENV, USER, EXPOSE, VOLUME, HEALTHCHECK, ENTRYPOINT, CMD).

# Pinned by version so a rebuild of the same commit gets the same toolchain and base; bump them
# on purpose (and together with the toolchain the tests ran on).
ARG RUST_VERSION=1.95.0
ARG DEBIAN_VERSION=12.15

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# The dependencies first, against a stub crate: this layer depends only on Cargo.toml and
# Cargo.lock (and build.rs, which cargo compiles before anything of the package), so editing src/
# rebuilds the proxy (a minute) and not its ~200 dependencies. The stub bench exists because
# Cargo.toml declares it and cargo reads every declared target.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && echo 'fn main() {}' > benches/hot_paths.rs \
 && cargo build --release --locked --bin session-proxy \
 && rm -r src
COPY src ./src
# Declared here, after the dependency layer, so a new commit does not rebuild the dependencies.
ARG GIT_COMMIT
# COPY keeps the files' own mtimes, which can be older than the stub's build: touch, or cargo
# would call the stub build fresh and ship it. build.rs reads SESSION_PROXY_GIT_COMMIT (empty:
# "unknown").
RUN touch src/main.rs src/lib.rs \
 && SESSION_PROXY_GIT_COMMIT="$GIT_COMMIT" cargo build --release --locked --bin session-proxy

FROM debian:${DEBIAN_VERSION}-slim
# Not "proxy": Debian's base-passwd already has a `proxy` user (uid 13), so `useradd proxy` fails
# (found by tests/dockerfile.py). uid and gid 10001 are what deploy/kubernetes runs as.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 session-proxy \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin session-proxy
COPY --from=build /src/target/release/session-proxy /usr/local/bin/session-proxy
COPY docker/proxy.yaml /etc/session-proxy/proxy.yaml
# docker/proxy.yaml listens on all interfaces; mount your own proxy.yaml over it. Certificates go
# in /etc/session-proxy/certs (its commented tls: block points there).
VOLUME ["/etc/session-proxy/certs"]
ENV SESSION_PROXY_CONFIG=/etc/session-proxy/proxy.yaml
USER 10001
# 8080 the proxy, 8443 HTTPS when tls: is on, 9901 the admin listener (metrics, probes and the
# session API: on loopback unless SESSION_PROXY_ADMIN_LISTEN=0.0.0.0:9901 and
# SESSION_PROXY_ADMIN_TOKEN are set; for the orchestrator and Prometheus, never published).
EXPOSE 8080 8443 9901
# `health` asks /readyz of the config's admin_listen (a wildcard address is reached over loopback) and
# exits 0/1. The proxy bounds /readyz at 2s, so a 5s timeout never cuts a slow answer short.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/session-proxy", "health"]
ENTRYPOINT ["/usr/local/bin/session-proxy"]
CMD ["serve"]
