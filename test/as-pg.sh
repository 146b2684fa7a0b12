# Sourced by the test and benchmark scripts that start their own servers.
# as_pg COMMAND...: runs COMMAND as the postgres user when the caller is root
# (CI is), as the caller otherwise. The command runs from /, which postgres can
# always enter (the caller's directory may be a 0700 home), so every path
# given to it must be absolute.
as_pg() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}
