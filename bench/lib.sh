# Shell helpers shared by the bench set-up scripts (sourced, not run).

find_python() { # find_python MINOR [explicit]
    local minor="$1" explicit="${2:-}" cand
    for cand in "$explicit" "python3.$minor" "/root/.pyenv/versions/3.$minor."*/bin/python3.$minor; do
        [ -n "$cand" ] || continue
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import sys; sys.exit(sys.version_info[:2] != (3, $minor))" 2>/dev/null; then
            # the interpreter itself, not a pyenv shim
            "$cand" -c "import sys; print(sys.executable)"
            return 0
        fi
    done
    return 1
}
