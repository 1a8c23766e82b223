/*
 * amqp_api: rabbitmq-c's headers, wherever the installed version keeps
 * them. Include this instead of naming them.
 *
 * rabbitmq-c 0.12 and later (Debian 13 has 0.15) install the headers as
 * <rabbitmq-c/amqp.h>, <rabbitmq-c/framing.h>, <rabbitmq-c/tcp_socket.h>
 * and <rabbitmq-c/ssl_socket.h>, and keep the old names only as shims that
 * raise a deprecation #warning (an error under -Werror); 0.11 (Debian 12)
 * has only the old names.
 */
#ifndef SLUICE_AMQP_API_H
#define SLUICE_AMQP_API_H

#if defined(__has_include)
#if __has_include(<rabbitmq-c/amqp.h>)
#define SLUICE_RABBITMQ_C_NEW_HEADERS 1
#endif
#endif

#ifdef SLUICE_RABBITMQ_C_NEW_HEADERS
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/framing.h>
#include <rabbitmq-c/ssl_socket.h>
#include <rabbitmq-c/tcp_socket.h>
#else
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#endif

#endif
