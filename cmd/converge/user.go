package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/converge-dev/converge/access"
)

func init() {
	subcommands = append(subcommands, func(a *app) *cobra.Command { return a.userCmd() })
}

// withAccess opens the store (migrated) and the access service for a user command.
func (a *app) withAccess(ctx context.Context, f func(*access.Service) error) error {
	st, err := a.openStore(ctx, true)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	acc, err := a.openAccess(st)
	if err != nil {
		return err
	}
	return f(acc)
}

func (a *app) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Add, list, disable dashboard users; change passwords and roles"}
	roles := strings.Join(access.RoleNames(), "|")
	var email, role, name string
	emailFlag := func(c *cobra.Command) {
		c.Flags().StringVar(&email, "email", "", "the user's email (their login)")
		_ = c.MarkFlagRequired("email")
	}
	add := &cobra.Command{
		Use:   "add --email E --role " + roles + " [--name N]",
		Short: "Add a user; the password is asked (twice, hidden) on a terminal, or read as the first line of stdin",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := access.ParseRole(role)
			if err != nil {
				return usageError{err}
			}
			pw, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return a.withAccess(cmd.Context(), func(acc *access.Service) error {
				u, err := acc.AddUser(cmd.Context(), "cli", access.User{Email: email, Name: name, Role: r}, pw)
				if err != nil {
					return usageError{err}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s (%s) added\n", u.Email, u.Role)
				return nil
			})
		},
	}
	emailFlag(add)
	add.Flags().StringVar(&role, "role", "", "what the user may do: "+strings.Join(access.RoleNames(), ", ")+" (each includes the ones before)")
	add.Flags().StringVar(&name, "name", "", "the user's name, for people")
	_ = add.MarkFlagRequired("role")

	list := &cobra.Command{
		Use:   "list",
		Short: "List users (never passwords)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAccess(cmd.Context(), func(acc *access.Service) error {
				users, err := acc.Users(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "email\tname\trole\tstatus\tcreated")
				for _, u := range users {
					status := "active"
					if u.Disabled {
						status = "disabled"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Email, u.Name, u.Role, status, u.CreatedAt.UTC().Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}

	change := func(use, short string, f func(ctx context.Context, acc *access.Service) (string, error)) *cobra.Command {
		c := &cobra.Command{
			Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return a.withAccess(cmd.Context(), func(acc *access.Service) error {
					msg, err := f(cmd.Context(), acc)
					if err != nil {
						return err
					}
					fmt.Fprintln(cmd.OutOrStdout(), msg)
					return nil
				})
			},
		}
		emailFlag(c)
		return c
	}
	disable := change("disable --email E", "Disable a user and end their sessions (within 30 s on a running server)",
		func(ctx context.Context, acc *access.Service) (string, error) {
			return "user " + email + " disabled", acc.SetDisabled(ctx, "cli", email, true)
		})
	enable := change("enable --email E", "Enable a disabled user",
		func(ctx context.Context, acc *access.Service) (string, error) {
			return "user " + email + " enabled", acc.SetDisabled(ctx, "cli", email, false)
		})
	var passwdIn *cobra.Command
	passwd := change("passwd --email E", "Set a user's password (asked, or the first line of stdin) and end their sessions",
		func(ctx context.Context, acc *access.Service) (string, error) {
			pw, err := readPassword(passwdIn.InOrStdin(), passwdIn.ErrOrStderr())
			if err != nil {
				return "", err
			}
			return "password of " + email + " changed", acc.SetPassword(ctx, "cli", email, pw)
		})
	passwdIn = passwd
	setRole := change("role --email E --role "+roles, "Change a user's role",
		func(ctx context.Context, acc *access.Service) (string, error) {
			r, err := access.ParseRole(role)
			if err != nil {
				return "", usageError{err}
			}
			return "user " + email + " is now " + r.String(), acc.SetRole(ctx, "cli", email, r)
		})
	setRole.Flags().StringVar(&role, "role", "", "the new role: "+strings.Join(access.RoleNames(), ", "))
	_ = setRole.MarkFlagRequired("role")
	cmd.AddCommand(add, list, disable, enable, passwd, setRole)
	return cmd
}
