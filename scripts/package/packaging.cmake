# The Debian package: `cpack -G DEB` in the build tree writes flotilla_<version>_<arch>.deb.
#
# One package, not a runtime package and a -dev package: the SDK is a few headers and a CMake
# package, and a plugin author needs the engine installed anyway to load and try the plugin.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME flotilla)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "The Flotilla authors")
set(CPACK_PACKAGE_CONTACT "Flotilla maintainers <flotilla-maintainers@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "cluster with discovery, load balancing, metrics and logs from one file")
# CPack puts the summary first as the synopsis, indents these lines and turns the empty one into " .".
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
"Flotilla reads a TOML topology that names a driver, node groups, services
and addons, and makes the cluster match it: nodes on this machine or in
network namespaces, services as processes or containers, etcd or Consul
for discovery, HAProxy in front, Prometheus for metrics and rsyslog for
logs. Runs are idempotent and continue where an interrupted run stopped.

The package holds the flotilla command, its built-in plugins, the plugin
SDK (headers and CMake package), man pages, shell completion and example
topologies in /usr/share/flotilla/configs.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# The servers the addons of the default topology run (configs/local.toml uses all of them).
set(CPACK_DEBIAN_PACKAGE_DEPENDS
  "haproxy, prometheus, prometheus-node-exporter, etcd-server, rsyslog, rsyslog-relp, dnsmasq-base")
# etcdctl for looking at the catalog by hand; Docker for the docker runtime and netns driver.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "etcd-client, curl")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "docker.io, docker-registry, iproute2")

# Files Debian asks of every package: a copyright file and a compressed changelog.
set(FLOTILLA_PACKAGE_DOC ${CMAKE_BINARY_DIR}/share/doc/flotilla)
file(MAKE_DIRECTORY ${FLOTILLA_PACKAGE_DOC})
add_custom_command(OUTPUT ${FLOTILLA_PACKAGE_DOC}/changelog.gz
  COMMAND sh -c "gzip -9nc '${CMAKE_CURRENT_LIST_DIR}/changelog' > '${FLOTILLA_PACKAGE_DOC}/changelog.gz'"
  DEPENDS ${CMAKE_CURRENT_LIST_DIR}/changelog
  VERBATIM)
add_custom_target(flotilla_package_doc ALL DEPENDS ${FLOTILLA_PACKAGE_DOC}/changelog.gz)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/copyright ${FLOTILLA_PACKAGE_DOC}/changelog.gz DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/configs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/flotilla/configs FILES_MATCHING PATTERN "*.toml")

include(CPack)
