# Install rules and the Debian package.
#
# Components:
#   runtime  sockagentd and sockctl (bin/), the systemd unit
#            (lib/systemd/system/), the example config (/etc/sockagent when
#            the prefix is /usr, else <prefix>/etc/sockagent) and the example
#            policies (share/doc/sockagent/examples/).
#   dev      the C++ client library: static libraries (lib/), headers
#            (include/sockagent/, included as "client/agent.h"), and a CMake
#            package: find_package(sockagent CONFIG) gives sockagent::client.
#
#   cmake --install build --prefix /opt/sockagent      # both components
#   cpack --config build/CPackConfig.cmake -G DEB      # sockagent_<v>_<arch>.deb (runtime)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS sockagentd sockctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/examples/policy.textproto
  ${PROJECT_SOURCE_DIR}/deploy/examples/policy.json
  ${PROJECT_SOURCE_DIR}/deploy/config/sockagentd.json
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples COMPONENT runtime)
# The config the unit reads: /etc/sockagent when the prefix is /usr (the
# package), <prefix>/etc/sockagent otherwise; decided at install time, when
# CPack's prefix is known. The unit (lib/systemd/system/) gets the installed
# paths of the agent and the config. file(INSTALL) honours DESTDIR.
install(CODE "
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(_sockagent_etc /etc/sockagent)
  else()
    set(_sockagent_etc \"\${CMAKE_INSTALL_PREFIX}/etc/sockagent\")
  endif()
  file(INSTALL DESTINATION \"\${_sockagent_etc}\" TYPE FILE
    FILES \"${PROJECT_SOURCE_DIR}/deploy/config/sockagentd.textproto\")
  file(READ \"${PROJECT_SOURCE_DIR}/deploy/systemd/sockagentd.service\" _unit)
  string(REPLACE /usr/bin/sockagentd \"\${CMAKE_INSTALL_PREFIX}/bin/sockagentd\"
    _unit \"\${_unit}\")
  string(REPLACE /etc/sockagent/sockagentd.textproto
    \"\${_sockagent_etc}/sockagentd.textproto\" _unit \"\${_unit}\")
  file(WRITE \"${PROJECT_BINARY_DIR}/install-unit/sockagentd.service\" \"\${_unit}\")
  file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\"
    TYPE FILE FILES \"${PROJECT_BINARY_DIR}/install-unit/sockagentd.service\")
" COMPONENT runtime)

# The client library and what it links: static libraries, exported under the
# sockagent:: namespace with short names.
set(_sockagent_libs sockagent_client sockagent_proto sockagent_errors
  sockagent_messages sockagent_traffic_data sockagent_units)
foreach(lib ${_sockagent_libs})
  string(REPLACE "sockagent_" "" _export_name ${lib})
  set_target_properties(${lib} PROPERTIES EXPORT_NAME ${_export_name})
endforeach()
# The generated messages have a field named `unix`, which GCC's GNU dialects
# (-std=gnu++17, CMake's default) predefine as a macro: consumers get -Uunix.
# This project itself builds with CMAKE_CXX_EXTENSIONS OFF.
set_property(TARGET sockagent_messages APPEND PROPERTY
  INTERFACE_COMPILE_OPTIONS "$<INSTALL_INTERFACE:-Uunix>")
target_compile_features(sockagent_client INTERFACE cxx_std_17)
install(TARGETS ${_sockagent_libs} EXPORT sockagentTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/client/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sockagent/client COMPONENT dev
  FILES_MATCHING PATTERN "*.h"
  PATTERN "cli" EXCLUDE PATTERN "scenario" EXCLUDE PATTERN "examples" EXCLUDE
  PATTERN "python" EXCLUDE)
install(FILES ${PROJECT_SOURCE_DIR}/proto/errno_status.h
  ${PROJECT_SOURCE_DIR}/proto/status_codec.h
  ${PROJECT_SOURCE_DIR}/proto/traffic_data.h
  ${PROJECT_SOURCE_DIR}/proto/duration_codec.h
  ${PROJECT_SOURCE_DIR}/proto/units.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sockagent/proto COMPONENT dev)
install(DIRECTORY ${PROJECT_BINARY_DIR}/proto/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sockagent COMPONENT dev
  FILES_MATCHING PATTERN "*.pb.h" PATTERN "CMakeFiles" EXCLUDE)
install(EXPORT sockagentTargets NAMESPACE sockagent::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/sockagent COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/sockagentConfig.cmake.in
  ${PROJECT_BINARY_DIR}/sockagentConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/sockagent)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/sockagentConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/sockagentConfig.cmake
  ${PROJECT_BINARY_DIR}/sockagentConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/sockagent COMPONENT dev)

# The Debian package: the runtime component, dependencies from
# dpkg-shlibdeps, the config a conffile.
set(CPACK_PACKAGE_NAME sockagent)
set(CPACK_PACKAGE_VENDOR "sockagent")
set(CPACK_PACKAGE_CONTACT "sockagent maintainers <sockagent@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "agent that lets remote test harnesses use this host's sockets")
set(CPACK_PACKAGE_DESCRIPTION
  "sockagentd serves the sockagent.v1 gRPC API: remote callers create sockets, bind, listen, accept, connect, send and receive with this host's kernel sockets. sockctl is its command line. The systemd unit runs the agent hardened; /etc/sockagent/sockagentd.textproto is its configuration.")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
