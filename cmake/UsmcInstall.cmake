# What `cmake --install` puts where (GNUInstallDirs): the tools in BINDIR,
# the preload and the verbs module in LIBDIR/usmc, man pages made from the
# tools' own --help texts, bash completion, and an example usmc.conf.

# usmc-run finds the preload from its own directory: the install's
# relative path, so that a DESTDIR or a moved prefix works as well.
file(RELATIVE_PATH USMC_BIN_TO_PKGLIB ${CMAKE_INSTALL_FULL_BINDIR}
  ${CMAKE_INSTALL_FULL_LIBDIR}/usmc)
configure_file(${PROJECT_SOURCE_DIR}/tools/usmc-run
  ${PROJECT_BINARY_DIR}/install/usmc-run @ONLY)
install(PROGRAMS ${PROJECT_BINARY_DIR}/install/usmc-run
  ${PROJECT_SOURCE_DIR}/tools/usmc-netns DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS usmc-perf usmc-rules usmc-stat usmc-check usmc-decode usmc-smcctl
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(FILES ${PROJECT_SOURCE_DIR}/docs/usmc.conf.example
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# One completion script; bash-completion loads it by command name.
set(USMC_COMPLETED usmc-run usmc-netns usmc-perf usmc-rules usmc-stat
  usmc-check usmc-decode usmc-smcctl)
foreach(t ${USMC_COMPLETED})
  install(FILES ${PROJECT_SOURCE_DIR}/tools/completion/usmc.bash
    DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
    RENAME ${t})
endforeach()

# Man pages: each tool's --help is already laid out as a manual (NAME,
# SYNOPSIS, DESCRIPTION, OPTIONS...); txt2man turns it into roff at build
# time, so the page is the program's own text and cannot drift from it.
set(USMC_MAN_PAGES AUTO CACHE STRING "Build man pages with txt2man (ON, OFF, AUTO)")
find_program(TXT2MAN txt2man)
set(USMC_FEATURE_MAN OFF)
if(USMC_MAN_PAGES STREQUAL "ON" AND NOT TXT2MAN)
  message(FATAL_ERROR "USMC_MAN_PAGES=ON needs txt2man (Debian: apt-get install txt2man)")
endif()
if(TXT2MAN AND NOT USMC_MAN_PAGES STREQUAL "OFF")
  set(USMC_FEATURE_MAN ON)
  # name|section|the program that prints the text
  set(pages
    usmc-run|1|${PROJECT_BINARY_DIR}/tools/usmc-run
    usmc-netns|8|${PROJECT_BINARY_DIR}/tools/usmc-netns
    usmc-perf|1|$<TARGET_FILE:usmc-perf>
    usmc-rules|1|$<TARGET_FILE:usmc-rules>
    usmc-stat|1|$<TARGET_FILE:usmc-stat>
    usmc-check|1|$<TARGET_FILE:usmc-check>
    usmc-decode|1|$<TARGET_FILE:usmc-decode>
    usmc-smcctl|8|$<TARGET_FILE:usmc-smcctl>)
  set(outs)
  foreach(p ${pages})
    string(REPLACE "|" ";" f "${p}")
    list(GET f 0 name)
    list(GET f 1 sec)
    list(GET f 2 prog)
    set(out ${PROJECT_BINARY_DIR}/man/${name}.${sec})
    set(dep ${prog})
    if(TARGET ${name})
      set(dep ${name})
    endif()
    add_custom_command(OUTPUT ${out}
      COMMAND bash ${PROJECT_SOURCE_DIR}/cmake/usmc-man.sh ${prog} ${name} ${sec}
        ${PROJECT_VERSION} ${out}
      DEPENDS ${dep} ${PROJECT_SOURCE_DIR}/cmake/usmc-man.sh
      COMMENT "man page ${name}(${sec})" VERBATIM)
    list(APPEND outs ${out})
    install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${sec})
  endforeach()
  add_custom_target(usmc-man ALL DEPENDS ${outs})
endif()

# The library: libusmc.so.0 with usmc.h, usmc.pc and a CMake package.
install(TARGETS usmc_shared EXPORT usmcTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  PUBLIC_HEADER DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT usmcTargets NAMESPACE usmc::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/usmc)
include(CMakePackageConfigHelpers)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/usmcConfig.cmake.in
  ${PROJECT_BINARY_DIR}/install/usmcConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/usmc)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/install/usmcConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/install/usmcConfig.cmake
  ${PROJECT_BINARY_DIR}/install/usmcConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/usmc)
# usmc.pc: the other paths hang off ${prefix}, which is the one of the
# install itself (cmake --install --prefix), written when it runs
set(USMC_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
set(USMC_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/usmc.pc.in ${PROJECT_BINARY_DIR}/install/usmc.pc.in @ONLY)
install(CODE "set(usmc_pc \"${PROJECT_BINARY_DIR}/install/usmc.pc\")")
install(CODE [[
  file(READ "${usmc_pc}.in" pc)
  string(REPLACE "%PREFIX%" "${CMAKE_INSTALL_PREFIX}" pc "${pc}")
  file(WRITE "${usmc_pc}" "${pc}")
]])
install(FILES ${PROJECT_BINARY_DIR}/install/usmc.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
install(FILES ${PROJECT_SOURCE_DIR}/docs/examples/usmc-echo.c
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
