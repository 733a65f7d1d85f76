# Shared by tests/cluster/run.sh and tests/cluster/start.sh (sourced, not run): fetches
# OpenSearch with its k-NN plugin once, and starts nodes on 127.0.0.1.
#   engine_fetch                         the engine into $cluster_cache (Maven, pom.xml here)
#   engine_start NAME HTTP TCP DIR SEEDS MANAGERS
#                                        one node, data and logs in DIR, pid in DIR/pid

cluster_version=2.19.1
cluster_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cluster_cache=${WENDA_CLUSTER_CACHE:-$cluster_root/target/cluster-cache}
cluster_home=$cluster_cache/opensearch-$cluster_version

if [ -z "${JAVA_HOME:-}" ]; then
    JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
fi
export JAVA_HOME OPENSEARCH_JAVA_HOME=$JAVA_HOME

# The server zip, the k-NN plugin, and lang-painless laid out as a module (the plugin
# extends it; Maven has it as a jar with its libraries, our descriptor goes beside them).
engine_fetch() {
    if [ -f "$cluster_home/.complete" ]; then
        return 0
    fi
    echo "fetching OpenSearch $cluster_version and its k-NN plugin into $cluster_cache"
    rm -rf "$cluster_home" "$cluster_cache/artifacts"
    mkdir -p "$cluster_cache"
    mvn -B -q -f "$cluster_root/tests/cluster/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$cluster_cache/artifacts"
    (cd "$cluster_cache" && unzip -q "artifacts/opensearch-$cluster_version.zip")
    mkdir -p "$cluster_home/modules/lang-painless" "$cluster_home/plugins/opensearch-knn"
    cp "$cluster_cache"/artifacts/*.jar "$cluster_home/modules/lang-painless/"
    cp "$cluster_root"/tests/cluster/lang-painless/* "$cluster_home/modules/lang-painless/"
    (cd "$cluster_home/plugins/opensearch-knn" &&
        unzip -q "$cluster_cache/artifacts/opensearch-knn-$cluster_version.0.zip")
    touch "$cluster_home/.complete"
}

# Starts one node: small heap, no security plugin in this distribution, discovery among
# SEEDS (host:port list) with MANAGERS the first cluster-manager-eligible node names.
# OpenSearch refuses to run as root: as root, the node runs as nobody.
engine_start() {
    local name=$1 http=$2 tcp=$3 dir=$4 seeds=$5 managers=$6
    if [ ! -d "$dir/config" ]; then
        mkdir -p "$dir/data" "$dir/logs"
        cp -r "$cluster_home/config" "$dir/config"
        sed -i '/Xlog:gc/d; /^-Xm[sx]/d; s#HeapDumpPath=.*#HeapDumpPath='"$dir"'/data#; s#ErrorFile=.*#ErrorFile='"$dir"'/logs/hs_err_pid%p.log#' "$dir/config/jvm.options"
        printf -- '-Xms256m\n-Xmx512m\n' >>"$dir/config/jvm.options"
        cat >"$dir/config/opensearch.yml" <<YML
cluster.name: wenda
node.name: $name
path.data: $dir/data
path.logs: $dir/logs
network.host: 127.0.0.1
http.port: $http
transport.port: $tcp
discovery.seed_hosts: [$seeds]
cluster.initial_cluster_manager_nodes: [$managers]
cluster.routing.allocation.disk.threshold_enabled: false
YML
        if [ "$(id -u)" = 0 ]; then chown -R 65534:65534 "$dir"; fi
    fi
    local as_user=()
    if [ "$(id -u)" = 0 ]; then
        as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    fi
    (cd "$dir" && exec "${as_user[@]}" env OPENSEARCH_PATH_CONF="$dir/config" \
        JAVA_HOME="$JAVA_HOME" OPENSEARCH_JAVA_HOME="$JAVA_HOME" \
        "$cluster_home/bin/opensearch" >"$dir/out.log" 2>&1) &
    echo $! >"$dir/pid"
}

# Waits until the cluster at URL has NODES nodes and its indices are at least STATUS.
engine_wait() {
    local url=$1 nodes=$2 status=$3
    for _ in $(seq 1 180); do
        if curl -sf -m 2 "$url/_cluster/health?wait_for_nodes=$nodes&wait_for_status=$status&timeout=1s" >/dev/null; then
            return 0
        fi
        sleep 1
    done
    echo "the cluster at $url did not reach $nodes nodes / $status; logs in its nodes' out.log"
    return 1
}
