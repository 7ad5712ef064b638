package config_test

import (
	"fmt"

	"github.com/stateroom-go/stateroom/internal/config"
)

func ExampleParse() {
	c, err := config.Parse("stateroom.toml", []byte(`
static_files = "public"

[client]
package = "./web"
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("static %q, service %q, client %q\n", c.StaticFiles, c.ServicePackage, c.ClientPackage)

	_, err = config.Parse("stateroom.toml", []byte("statik_files = \"public\"\n"))
	fmt.Println(err)
	// Output:
	// static "public", service ".", client "./web"
	// stateroom.toml:1:1: unknown key "statik_files"
	// valid keys: static_files, service_id, [service] package, [client] package, [client] optimization_level, [state] dir, [state] persist, [state] checkpoint_interval, [state] hibernate_after, [limits] max_message_size, [limits] max_message_fragments, [limits] max_room_id_length, [limits] max_rooms_created_per_ip, [limits] allowed_hosts, [limits] send_queue_size, [limits] write_timeout
}
