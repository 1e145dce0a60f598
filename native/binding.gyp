{
  "targets": [
    {
      "target_name": "meshd_udp",
      "sources": ["meshd_udp.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
