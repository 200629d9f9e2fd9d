package main

import (
	"encoding/xml"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// docker-compose.yml cannot run here (no Docker engine): these tests parse it
// and the ClickHouse configuration files of its cluster profile, and check
// that they agree with each other and with converge's configuration keys.

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Profiles    []string          `yaml:"profiles"`
	Image       string            `yaml:"image"`
	Hostname    string            `yaml:"hostname"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   any               `yaml:"depends_on"`
}

// mounts maps a service's container paths to the host files or named
// volumes mounted there.
func (s composeService) mounts() map[string]string {
	m := map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		m[parts[1]] = parts[0]
	}
	return m
}

func (s composeService) dependsOn() []string {
	var out []string
	switch d := s.DependsOn.(type) {
	case []any:
		for _, x := range d {
			out = append(out, x.(string))
		}
	case map[string]any:
		for k := range d {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

var composeDefault = regexp.MustCompile(`^\$\{[A-Z_]+:-(.*)\}$`)

// expand reads a compose value the way compose does when its variable is unset.
func expand(v string) string {
	if m := composeDefault.FindStringSubmatch(v); m != nil {
		return m[1]
	}
	return v
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// readXML decodes a ClickHouse configuration file of the repository (a path
// as compose mounts it, ./deploy/…) into v.
func readXML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../..", path))
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

type remoteServersXML struct {
	Clusters struct {
		List []struct {
			XMLName xml.Name
			Secret  struct {
				FromEnv string `xml:"from_env,attr"`
			} `xml:"secret"`
			Shards []struct {
				InternalReplication bool `xml:"internal_replication"`
				Replicas            []struct {
					Host string `xml:"host"`
					Port string `xml:"port"`
				} `xml:"replica"`
			} `xml:"shard"`
		} `xml:",any"`
	} `xml:"remote_servers"`
}

type macrosXML struct {
	Macros struct {
		Cluster string `xml:"cluster"`
		Shard   string `xml:"shard"`
		Replica string `xml:"replica"`
	} `xml:"macros"`
	InterserverHost string `xml:"interserver_http_host"`
}

type zookeeperXML struct {
	Nodes []struct {
		Host string `xml:"host"`
		Port string `xml:"port"`
	} `xml:"zookeeper>node"`
	DDLPath string `xml:"distributed_ddl>path"`
}

type keeperXML struct {
	TCPPort  string `xml:"keeper_server>tcp_port"`
	ServerID string `xml:"keeper_server>server_id"`
	LogPath  string `xml:"keeper_server>log_storage_path"`
	Servers  []struct {
		ID       string `xml:"id"`
		Hostname string `xml:"hostname"`
	} `xml:"keeper_server>raft_configuration>server"`
}

type usersXML struct {
	Default struct {
		ProductMode      string `xml:"distributed_product_mode"`
		ForegroundInsert string `xml:"distributed_foreground_insert"`
	} `xml:"profiles>default"`
}

func TestComposeCluster(t *testing.T) {
	c := readCompose(t)
	inProfile := func(name string) bool { return slices.Contains(c.Services[name].Profiles, "cluster") }
	for _, name := range []string{"clickhouse", "converge"} {
		if s, ok := c.Services[name]; !ok || len(s.Profiles) > 0 {
			t.Errorf("service %s: missing, or not started by a plain `docker compose up` (profiles %v)", name, s.Profiles)
		}
	}
	for _, name := range []string{"keeper", "clickhouse-1", "clickhouse-2", "converge-cluster"} {
		if !inProfile(name) {
			t.Errorf("service %s: not in profile cluster", name)
		}
	}
	// The cluster runs the single server's release; Keeper the same.
	single := c.Services["clickhouse"].Image
	tag := single[strings.LastIndex(single, ":")+1:]
	if single != "clickhouse/clickhouse-server:25.8" {
		t.Errorf("single server image %s", single)
	}
	if k := c.Services["keeper"].Image; k != "clickhouse/clickhouse-keeper:"+tag {
		t.Errorf("keeper image %s, want clickhouse/clickhouse-keeper:%s", k, tag)
	}

	// Every bind-mounted file exists; every named volume is declared.
	for name, s := range c.Services {
		for target, src := range s.mounts() {
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join("../..", src)); err != nil {
					t.Errorf("service %s mounts %s at %s: %v", name, src, target, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s: volume %s is not declared", name, src)
			}
		}
	}

	// The servers: remote_servers names them, their macros name themselves.
	var servers []string
	for name, s := range c.Services {
		if inProfile(name) && s.Image == single {
			servers = append(servers, name)
		}
	}
	slices.Sort(servers)
	if len(servers) != 2 {
		t.Fatalf("cluster servers %v, want two replicas", servers)
	}
	first := c.Services[servers[0]]
	var rs remoteServersXML
	readXML(t, first.mounts()["/etc/clickhouse-server/config.d/remote_servers.xml"], &rs)
	if len(rs.Clusters.List) != 1 {
		t.Fatalf("remote_servers.xml: %d clusters, want 1", len(rs.Clusters.List))
	}
	cl := rs.Clusters.List[0]
	cluster := cl.XMLName.Local
	var replicas []string
	for _, sh := range cl.Shards {
		if !sh.InternalReplication {
			t.Errorf("remote_servers.xml: a shard without internal_replication: a Distributed INSERT would write every replica besides the replication")
		}
		for _, r := range sh.Replicas {
			if r.Port != "9000" {
				t.Errorf("remote_servers.xml: replica %s port %s, want the native port 9000", r.Host, r.Port)
			}
			replicas = append(replicas, r.Host)
		}
	}
	slices.Sort(replicas)
	if !slices.Equal(replicas, servers) {
		t.Errorf("remote_servers.xml replicas %v, compose servers %v", replicas, servers)
	}
	var zk zookeeperXML
	readXML(t, first.mounts()["/etc/clickhouse-server/config.d/zookeeper.xml"], &zk)
	var keeper keeperXML
	readXML(t, c.Services["keeper"].mounts()["/etc/clickhouse-keeper/keeper_config.xml"], &keeper)
	var users usersXML
	readXML(t, first.mounts()["/etc/clickhouse-server/users.d/converge.xml"], &users)
	if users.Default.ProductMode != "global" || users.Default.ForegroundInsert != "1" {
		t.Errorf("users.d/converge.xml: distributed_product_mode %q, distributed_foreground_insert %q; converge sends global and 1", users.Default.ProductMode, users.Default.ForegroundInsert)
	}
	shardOf := map[string]string{}
	for _, name := range servers {
		s := c.Services[name]
		m := s.mounts()
		for _, f := range []string{"remote_servers.xml", "zookeeper.xml"} {
			if m["/etc/clickhouse-server/config.d/"+f] != first.mounts()["/etc/clickhouse-server/config.d/"+f] {
				t.Errorf("%s: %s differs from %s's", name, f, servers[0])
			}
		}
		var mx macrosXML
		readXML(t, m["/etc/clickhouse-server/config.d/macros.xml"], &mx)
		if mx.Macros.Replica != name || s.Hostname != name || mx.InterserverHost != name {
			t.Errorf("%s: replica macro %q, hostname %q, interserver_http_host %q: each must be the service's name", name, mx.Macros.Replica, s.Hostname, mx.InterserverHost)
		}
		if mx.Macros.Shard == "" || mx.Macros.Cluster != cluster {
			t.Errorf("%s: macros shard %q cluster %q", name, mx.Macros.Shard, mx.Macros.Cluster)
		}
		shardOf[name] = mx.Macros.Shard
		if s.Environment[cl.Secret.FromEnv] == "" {
			t.Errorf("%s: the cluster secret's variable %s is not set", name, cl.Secret.FromEnv)
		}
		if !slices.Contains(s.dependsOn(), "keeper") {
			t.Errorf("%s: does not depend on keeper", name)
		}
	}
	for _, sh := range cl.Shards { // replicas of one shard share the shard macro
		for _, r := range sh.Replicas[1:] {
			if shardOf[r.Host] != shardOf[sh.Replicas[0].Host] {
				t.Errorf("%s and %s are replicas of one shard with shard macros %q and %q", r.Host, sh.Replicas[0].Host, shardOf[r.Host], shardOf[sh.Replicas[0].Host])
			}
		}
	}
	if len(zk.Nodes) != 1 || zk.Nodes[0].Host != "keeper" || zk.Nodes[0].Port != keeper.TCPPort || zk.DDLPath == "" {
		t.Errorf("zookeeper.xml %+v does not reach the keeper service on its tcp_port %s", zk, keeper.TCPPort)
	}
	if len(keeper.Servers) != 1 || keeper.Servers[0].Hostname != "keeper" || keeper.Servers[0].ID != keeper.ServerID {
		t.Errorf("keeper_config.xml: raft servers %+v, server_id %s", keeper.Servers, keeper.ServerID)
	}
	if !strings.HasPrefix(keeper.LogPath, c.Services["keeper"].mountTarget("keeper-data")+"/") {
		t.Errorf("keeper_config.xml: log_storage_path %s is not in the keeper-data volume", keeper.LogPath)
	}

	// converge-cluster: its environment is a valid configuration in cluster mode on that cluster.
	cc := c.Services["converge-cluster"]
	for _, name := range servers {
		if !slices.Contains(cc.dependsOn(), name) {
			t.Errorf("converge-cluster does not wait for %s", name)
		}
	}
	for k, v := range cc.Environment {
		t.Setenv(k, expand(v))
	}
	cfg, err := loadConfig("", nil)
	if err != nil {
		t.Fatalf("converge-cluster's environment: %v", err)
	}
	if cfg.ClickHouse.Cluster != cluster {
		t.Errorf("converge-cluster: clickhouse.cluster %q, remote_servers defines %q", cfg.ClickHouse.Cluster, cluster)
	}
	host, port, _ := net.SplitHostPort(cfg.ClickHouse.Addr)
	if !slices.Contains(servers, host) || port != "8123" {
		t.Errorf("converge-cluster: clickhouse.addr %s is not a cluster server's HTTP port", cfg.ClickHouse.Addr)
	}
}

// mountTarget is where the named volume vol is mounted, or "".
func (s composeService) mountTarget(vol string) string {
	for target, src := range s.mounts() {
		if src == vol {
			return target
		}
	}
	return ""
}

// Every CONVERGE_ variable of the compose file is a configuration key.
func TestComposeEnvironmentKeys(t *testing.T) {
	known := map[string]bool{}
	for k := range defaults {
		known[envName(k)] = true
	}
	n := 0
	for name, s := range readCompose(t).Services {
		for k := range s.Environment {
			if strings.HasPrefix(k, "CONVERGE_") {
				n++
				if !known[k] {
					t.Errorf("service %s: %s is not a configuration key (docs/config.md)", name, k)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d CONVERGE_ variables in docker-compose.yml", n)
	}
}
