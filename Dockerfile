# Warden: a static binary on a distroless base, running as non-root.
#   docker build -t warden .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/warden ./cmd/warden

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/warden /usr/local/bin/warden
USER nonroot:nonroot
# ext_authz gRPC, HTTP (/metrics /healthz /readyz), admin API
EXPOSE 9191 9192 9193
ENTRYPOINT ["/usr/local/bin/warden"]
CMD ["serve", "--config", "/etc/warden/warden.yaml"]
