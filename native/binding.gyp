{
  "targets": [
    {
      "target_name": "meshd_udp",
      "sources": ["meshd_udp.c", "meshd_netns.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
